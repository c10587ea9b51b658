#!/usr/bin/env bash
# Runs the PHP app behind nginx: php-fpm in the background, then nginx in
# this process's place (exec), so the pid that started is the one serving.
#   PORT=8080 [DOWNSTREAM_URL=...] vm-tests/apps/php/run-fpm.sh
# The configs and php-fpm's socket go to a new directory under /tmp. php-fpm
# outlives nginx when nginx is killed: stop it by the pid in that directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ -n "${PORT:-}" ] || { echo "PORT environment variable is required" >&2; exit 1; }
dir=$(mktemp -d /tmp/beyla-php-fpm.XXXXXX)
bash "$here/fpm-config.sh" "$dir" "$PORT"
php-fpm8.2 -F -R -y "$dir/php-fpm.conf" &
for _ in $(seq 600); do
    [ -S "$dir/fpm.sock" ] && break
    sleep 0.1
done
[ -S "$dir/fpm.sock" ] || { echo "php-fpm did not make $dir/fpm.sock" >&2; exit 1; }
echo "listening on $PORT"
exec nginx -c "$dir/nginx.conf"
