// oidc-provider ships no types; the test fixture (oidc.ts) uses it through its own narrow interface.
declare module 'oidc-provider';
