#!/usr/bin/env python3
"""tty_answer — runs a program on a pseudo-terminal and answers its question.

Usage: tty_answer.py ANSWER [--sigint-after SECONDS] PROGRAM ARGS...
Waits for "Type 'yes'" (entrasync's confirmation prompt), types ANSWER and
a newline; with --sigint-after, sends SIGINT (a Ctrl-C) that many seconds
after the answer. Prints what the program wrote to the terminal, exits with
its exit code (128 + the signal's number when a signal killed it, as a shell says).
"""
import os
import pty
import signal
import sys
import time


def main():
    args = sys.argv[1:]
    answer = args.pop(0)
    sigint_after = None
    if args and args[0] == "--sigint-after":
        args.pop(0)
        sigint_after = float(args.pop(0))
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(args[0], args)
    out = b""

    def read():
        nonlocal out
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        out += chunk
        return bool(chunk)

    while b"Type 'yes'" not in out and read():
        pass
    os.write(fd, (answer + "\n").encode())
    if sigint_after is not None:
        time.sleep(sigint_after)
        os.kill(pid, signal.SIGINT)
    while read():
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    code = os.waitstatus_to_exitcode(status)
    sys.exit(128 - code if code < 0 else code)


main()
