// The naming example as a module path, for tests that serve it in a child process.
export { default } from '@openshell-interceptors/example-naming';
