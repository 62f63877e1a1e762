export { BundleSet, BundleSetError, bundleNameFor, type LoadedBundle, loadBundleSet } from './bundle-set.js';
export {
  openSignedBundleDriver,
  SIGNED_BUNDLE_DRIVER_VERSION,
  type SignedBundleDriver,
  type SignedBundleDriverOptions,
} from './driver.js';
export { HandleStore, type StoredHandle } from './handle-store.js';
