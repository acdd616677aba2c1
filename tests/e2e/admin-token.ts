// The admin token the e2e server starts with (HYPERGPU_ADMIN_TOKEN) and the spec signs in with. Against an
// external server (E2E_BASE_URL), set E2E_ADMIN_TOKEN to its token.
export const E2E_ADMIN_TOKEN = process.env.E2E_ADMIN_TOKEN ?? 'hypergpu-e2e-admin-token-0123456789';
