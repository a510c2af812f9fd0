import { describe, expect, it, vi } from "vitest";
import { preloadModules } from "../../server/preload";

describe("preloadModules: oidc-provider loads while the node starts, not during a catch-up", () => {
  it("loads oidc-provider when Dev OIDC or the OpenID provider will use it", async () => {
    const load = vi.fn(() => Promise.resolve({}));
    await preloadModules({ oidcProvider: true }, load);
    expect(load).toHaveBeenCalledWith("oidc-provider");
  });

  it("loads nothing when neither is on", async () => {
    const load = vi.fn(() => Promise.resolve({}));
    await preloadModules({ oidcProvider: false }, load);
    expect(load).not.toHaveBeenCalled();
  });

  it("never fails the start: a module that cannot load fails where it is used", async () => {
    await expect(preloadModules({ oidcProvider: true }, () => Promise.reject(new Error("missing")))).resolves.toBe(
      undefined,
    );
  });

  it("really loads the module by default", async () => {
    await expect(preloadModules({ oidcProvider: true })).resolves.toBe(undefined);
    // the module is in the cache now: a second import is immediate and gives the provider class
    const { default: Provider } = (await import("oidc-provider")) as { default: unknown };
    expect(typeof Provider).toBe("function");
  });
});
