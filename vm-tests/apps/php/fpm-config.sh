#!/usr/bin/env bash
# Writes the configs of the PHP app behind nginx into DIR, for PORT:
#   DIR/nginx.conf     nginx -c DIR/nginx.conf    (one process, listens on 127.0.0.1:PORT)
#   DIR/php-fpm.conf   php-fpm8.2 -F -R -y DIR/php-fpm.conf
# Start php-fpm first: nginx passes every request to its socket, DIR/fpm.sock.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR PORT" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
port=$2
[[ $port =~ ^[0-9]+$ ]] || { echo "$0: PORT must be a number, not $port" >&2; exit 2; }
render() {
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$dir/fpm.sock|g" \
        -e "s|@APP@|$here/app.php|g" "$1"
}
render "$here/nginx.conf.in" >"$dir/nginx.conf"
render "$here/php-fpm.conf.in" >"$dir/php-fpm.conf"
