"""The database servers of the /db scenario, inside a test VM: PostgreSQL,
MariaDB and Redis from the guest's filesystem (the host's on amd64, the
Debian arm64 root filesystem on arm64), each with a fresh data directory
under /tmp and on a fixed port (the VM is the only user). User, password
and database are "beyla", as the sample apps expect (vm-tests/apps/README.md).

    env, procs = databases.start(log_dir)   # env: POSTGRES_ADDR, MYSQL_ADDR, REDIS_ADDR
    databases.stop(procs)
"""

import glob
import os
import socket
import subprocess
import time

POSTGRES_PORT, MYSQL_PORT, REDIS_PORT = 15432, 13306, 16379
NAME = "beyla"
# initdb and mariadb-install-db under software emulation: generous.
START_TIMEOUT = 600
ROOT = "/tmp/beyla-db"


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_listening(port, proc, what):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if listening(port):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not listen on {port} within {START_TIMEOUT}s")


def as_user(user, command):
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *command]


def run(command, log, what):
    result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed with {result.returncode} (see {log.name})")


def start_postgres(log):
    bin_dir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    data = os.path.join(ROOT, "postgres")
    os.makedirs(data)
    subprocess.run(["chown", "postgres:postgres", data], check=True)
    run(as_user("postgres", [f"{bin_dir}/initdb", "--auth=trust", "--encoding=UTF8", "--no-sync",
                             f"--username={NAME}", "-D", data]), log, "initdb")
    proc = subprocess.Popen(as_user("postgres", [
        f"{bin_dir}/postgres", "-D", data, "-p", str(POSTGRES_PORT), "-k", data,
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]), stdout=log, stderr=subprocess.STDOUT)
    wait_listening(POSTGRES_PORT, proc, "postgres")
    run(as_user("postgres", [f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(POSTGRES_PORT),
                             "-U", NAME, NAME]), log, "createdb")
    return proc


def start_mariadb(log):
    data = os.path.join(ROOT, "mariadb")
    os.makedirs(data)
    subprocess.run(["chown", "mysql:mysql", data], check=True)
    run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
         "--auth-root-authentication-method=normal", "--skip-test-db"], log, "mariadb-install-db")
    init = os.path.join(data, "init.sql")
    with open(init, "w") as f:
        f.write(f"CREATE DATABASE IF NOT EXISTS {NAME};\n"
                f"CREATE USER IF NOT EXISTS '{NAME}'@'127.0.0.1' IDENTIFIED BY '{NAME}';\n"
                f"GRANT ALL ON {NAME}.* TO '{NAME}'@'127.0.0.1';\n")
    subprocess.run(["chown", "mysql:mysql", init], check=True)
    proc = subprocess.Popen([
        "mariadbd", "--no-defaults", f"--datadir={data}", f"--port={MYSQL_PORT}",
        "--bind-address=127.0.0.1", f"--socket={data}/mysqld.sock", f"--pid-file={data}/mysqld.pid",
        "--user=mysql", f"--init-file={init}", "--innodb-flush-log-at-trx-commit=0"],
        stdout=log, stderr=subprocess.STDOUT)
    wait_listening(MYSQL_PORT, proc, "mariadbd")
    return proc


def start_redis(log):
    proc = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", ROOT],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_listening(REDIS_PORT, proc, "redis-server")
    return proc


def start(log_dir):
    """Starts the three servers; returns (the apps' environment, the processes).
    Raises RuntimeError naming the server that did not start."""
    os.makedirs(ROOT, exist_ok=True)
    procs = []
    try:
        for name, starter in (("postgres", start_postgres), ("mariadb", start_mariadb),
                              ("redis", start_redis)):
            with open(os.path.join(log_dir, f"{name}.log"), "w") as log:
                procs.append(starter(log))
    except Exception:
        stop(procs)
        raise
    env = {"POSTGRES_ADDR": f"127.0.0.1:{POSTGRES_PORT}", "MYSQL_ADDR": f"127.0.0.1:{MYSQL_PORT}",
           "REDIS_ADDR": f"127.0.0.1:{REDIS_PORT}"}
    return env, procs


def stop(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
