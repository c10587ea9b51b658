#!/usr/bin/env bash
# Fetches the Kafka broker (kafka_2.13 and its runtime dependencies, pom.xml) from Maven Central
# into ~/.cache/beyla/kafka-<version>/lib, once, and prints that directory. The Kafka tests run
# this script and start the broker from there in KRaft mode.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
lib="$HOME/.cache/beyla/kafka-$version/lib"
# The stamp is written last, so an interrupted fetch is started again.
if [[ ! -f "$lib/.complete" ]]; then
    rm -rf "$lib"
    mkdir -p "$lib"
    mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$lib" >&2
    touch "$lib/.complete"
fi
echo "$lib"
