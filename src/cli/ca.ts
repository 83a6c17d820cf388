/** `mcp-mtls ca init`. */
import type { Command } from 'commander';
import { initCa } from '../ca/init.js';
import { parseDuration } from '../util/duration.js';
import { parseKeyType } from '../x509/keys.js';
import { collect, emit, readPassphrase, resolveDir } from './io.js';
import { MtlsError } from '../errors.js';
import { prepareInitStore, registerStore } from './store.js';

export function registerCa(program: Command): Command {
  const ca = program.command('ca').description('create and manage the certificate authority');
  ca.command('init')
    .description('create a root CA and an issuing intermediate in the CA folder')
    .requiredOption('--trust-domain <domain>', 'trust domain of every principal, e.g. acme.test (lowercase)')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--name <name>', 'display name of the CA (default: "<trust-domain> MCP CA")')
    .option('--org <organization>', 'O= attribute written into every subject')
    .option('--key-type <type>', 'ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | ed25519', 'ec-p256')
    .option('--root-ttl <duration>', 'root lifetime', '10y')
    .option('--intermediate-ttl <duration>', 'intermediate lifetime', '5y')
    .option('--encrypt-keys', 'encrypt both CA keys with a passphrase')
    .option('--passphrase-file <file>', 'read the passphrase from FILE (else $MCP_MTLS_PASSPHRASE or a prompt)')
    .option('--name-constraints', 'constrain the intermediate to the trust domain (and --permit-dns names)')
    .option('--permit-dns <name>', 'with --name-constraints: a DNS suffix servers may use (repeatable)', collect, [])
    .option('--crl-url <url>', 'CRL distribution point written into issued certificates')
    .option('--store <url>', 'keep the CA state in this PostgreSQL database (migrated, must be empty) instead of the folder; config.yaml records it')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls ca init --trust-domain acme.test --name "Acme MCP CA" --encrypt-keys')
    .action(async (o) => {
      if (o.permitDns.length && !o.nameConstraints) {
        throw new MtlsError('USAGE', '--permit-dns needs --name-constraints', { hint: 'add --name-constraints' });
      }
      const initStore = o.store ? await prepareInitStore(o.store) : undefined; // refused before anything is written
      const passphrase = o.encryptKeys ? await readPassphrase(o, 'New CA key passphrase: ', true) : undefined;
      const result = initCa({
        dir: resolveDir(o.dir),
        ...(initStore ? { store: initStore.url } : {}),
        trustDomain: o.trustDomain,
        ...(o.name ? { name: o.name } : {}),
        ...(o.org ? { organization: o.org } : {}),
        keyType: parseKeyType(o.keyType),
        rootTtlMs: parseDuration(o.rootTtl, '--root-ttl'),
        intermediateTtlMs: parseDuration(o.intermediateTtl, '--intermediate-ttl'),
        ...(passphrase ? { passphrase } : {}),
        ...(o.nameConstraints ? { nameConstraints: { dns: o.permitDns } } : {}),
        ...(o.crlUrl ? { crlUrl: o.crlUrl } : {}),
      });
      if (initStore) await initStore.moveState(resolveDir(o.dir));
      emit(o.json, { trustDomain: result.config.trustDomain, keyType: result.config.keyType, encryptedKeys: result.config.encryptedKeys, files: result.files, ...(initStore ? { store: initStore.url } : {}) }, () =>
        [
          `Created CA for trust domain ${result.config.trustDomain} (${result.config.keyType}${result.config.encryptedKeys ? ', encrypted keys' : ''})`,
          ...(initStore ? [`  state (certificates, CRLs, audit) in ${initStore.url}`] : []),
          `  root certificate:         ${result.files.rootCert}`,
          `  intermediate certificate: ${result.files.intermediateCert}`,
          `  keys (keep private):      ${result.files.rootKey}, ${result.files.intermediateKey}`,
          `Move the root key offline once you are done with setup; issuing needs only the intermediate.`,
          '',
        ].join('\n'),
      );
    });
  registerStore(ca);
  return ca;
}
