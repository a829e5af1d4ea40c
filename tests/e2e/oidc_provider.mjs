// A real OpenID provider for the single-sign-on tests: npm's oidc-provider (OpenID certified),
// installed by scripts/oidc-deps.sh, with one static confidential client and its development
// login and consent screens. Anyone may sign in with any login name:
//   "ann@example.com"             -> subject "ann@example.com", address verified
//   "unverified:bob@example.com"  -> subject "unverified:bob@example.com", address NOT verified
//   "noemail:carl"                -> no address at all
// Claims reach Lariat through the user info endpoint (the ID token of the code flow carries only
// `sub`, as the specification has it). Prints "issuer URL" on stdout once it listens.
//
// Environment: LARIAT_TEST_OIDC_DIR (where oidc-provider is installed), OIDC_REDIRECT_URI,
// OIDC_CLIENT_SECRET.
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.LARIAT_TEST_OIDC_DIR;
const { default: Provider } = await import(
  pathToFileURL(join(dir, 'node_modules/oidc-provider/lib/index.js')).href
);

function claimsOf(login) {
  if (login.startsWith('unverified:')) {
    return { email: login.slice('unverified:'.length), email_verified: false };
  }
  if (login.startsWith('noemail:')) {
    return {};
  }
  return { email: login, email_verified: true };
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'lariat',
        client_secret: process.env.OIDC_CLIENT_SECRET,
        redirect_uris: [process.env.OIDC_REDIRECT_URI],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    cookies: { keys: ['lariat-test-provider-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...claimsOf(id) };
        },
      };
    },
  });
  server.on('request', provider.callback());
  console.log(`issuer ${issuer}`);
});
