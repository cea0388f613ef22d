import type { Command } from 'commander';
import { defaultKeyComment, writeKeyPair } from '../../executor/approvals/keys.js';
import { contextOf } from '../main.js';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('create an Ed25519 key pair for signing approvals (e.g. for a CI bot); prints the public key last')
    .requiredOption('--out <file>', 'private key file (PKCS#8 PEM, mode 0600); the public key is written to FILE.pub')
    .option('--comment <text>', 'comment at the end of the public key line (default reprise-key@<hostname>)')
    .option('--force', 'replace an existing key pair')
    .action((opts: { out: string; comment?: string; force?: boolean }, cmd: Command) => {
      const { out } = contextOf(cmd);
      const written = writeKeyPair(opts.out, { comment: opts.comment ?? defaultKeyComment(), force: Boolean(opts.force) });
      out.info(`private key  ${written.privateKeyFile} (mode 0600; keep it secret)`);
      out.info(`public key   ${written.publicKeyFile}`);
      out.info(`fingerprint  ${written.fingerprint}`);
      out.info('trust it with a line like this in the pipeline\'s allowed_signers file:');
      out.info(`  <principal> namespaces="reprise" ${written.publicKeyLine}`);
      out.result(written.publicKeyLine, {
        level: 'result',
        privateKey: written.privateKeyFile,
        publicKey: written.publicKeyFile,
        fingerprint: written.fingerprint,
        publicKeyLine: written.publicKeyLine,
      });
    });
}
