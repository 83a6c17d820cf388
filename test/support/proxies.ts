/**
 * Real TLS-terminating proxies for tests: nginx and HAProxy (Debian packages), started as the
 * current user in the foreground (nginx `daemon off; master_process off`, haproxy `-db`) with
 * their configuration in a temporary folder, on ports picked free first, and killed by pid at
 * the end. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A port nobody listens on right now (picked by the kernel, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`the proxy exited (${child.exitCode}): ${output()}`);
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the proxy did not listen on ${port} within ${timeoutMs} ms: ${output()}`);
}

export interface RunningProxy {
  readonly port: number;
  /** what the proxy wrote (its error log for nginx) */
  output(): string;
  stop(): Promise<void>;
}

async function run(command: string, args: string[], port: number, logFile?: string): Promise<RunningProxy> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const output = () => out + (logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  try {
    await waitForPort(port, child, output);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    port,
    output,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** nginx with `server` as the body of its one `server { }` block (it must `listen 127.0.0.1:PORT`), in `dir`. */
export async function startNginx(dir: string, port: number, server: string, upstreams = ''): Promise<RunningProxy> {
  const conf = path.join(dir, 'nginx.conf');
  const log = path.join(dir, 'error.log');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${log} info;
events { worker_connections 128; }
http {
  access_log off;
  client_body_temp_path ${path.join(dir, 'body')};
  proxy_temp_path ${path.join(dir, 'proxy')};
  fastcgi_temp_path ${path.join(dir, 'fastcgi')};
  uwsgi_temp_path ${path.join(dir, 'uwsgi')};
  scgi_temp_path ${path.join(dir, 'scgi')};
  ${upstreams}
  server {
${server}
  }
}
`,
  );
  return run('nginx', ['-p', dir, '-c', conf, '-e', log], port, log);
}

/** HAProxy with `config` (global and defaults are added), in the foreground. */
export async function startHaproxy(dir: string, port: number, config: string): Promise<RunningProxy> {
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, `global\n  maxconn 256\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\n${config}\n`);
  return run('haproxy', ['-db', '-f', file], port);
}
