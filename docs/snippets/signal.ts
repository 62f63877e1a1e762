import { deny, interceptor } from '@openshell-interceptors/sdk';

export const imagePolicy = interceptor('image-policy').validate(
  'CreateSandbox',
  async ({ operation, signal }) => {
    const image = operation.spec?.template?.image;
    if (!image) return;
    // The signal aborts a little before the gateway gives up, so this fetch ends in time.
    const res = await fetch(`https://registry-policy.internal/allowed?image=${encodeURIComponent(image)}`, {
      signal,
    });
    if (res.status === 403)
      return deny('PERMISSION_DENIED', `image ${image} is not approved: use an image from the catalog`);
  },
);
