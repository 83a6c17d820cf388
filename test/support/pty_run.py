"""Runs a command under a pseudo-terminal, answering prompts: a test helper for what the CLI
does only on a TTY (passphrase prompts, progress bars).

usage: pty_run.py [--answer REGEX=TEXT]... -- CMD [ARGS...]
Each answer is used once, in order, when REGEX appears in the output. Prints everything the
command wrote to the terminal, and exits with the command's exit code."""
import os, pty, re, select, sys, time

def main():
    args = sys.argv[1:]
    answers = []
    while args and args[0] == '--answer':
        pattern, text = args[1].split('=', 1)
        answers.append((re.compile(pattern), text))
        args = args[2:]
    if not args or args[0] != '--':
        sys.exit('usage: pty_run.py [--answer REGEX=TEXT]... -- CMD [ARGS...]')
    cmd = args[1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out = b''
    pending = 0  # where the next prompt search starts
    deadline = time.time() + 60
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if answers:
            m = answers[0][0].search(out.decode('utf8', 'replace'), pending)
            if m:
                pending = m.end()
                os.write(fd, (answers.pop(0)[1] + '\n').encode())
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode('utf8', 'replace'))
    sys.exit(os.waitstatus_to_exitcode(status))

main()
