#!/usr/bin/env bash
# Side by side: `bantin serve` (release build) and nginx (`sendfile on`, `gzip on`)
# serving the same 50-item RSS feed of about 300 KB (the one bantin published),
# measured with wrk at 64 connections in the same run, three ways: plain GET,
# conditional GET answered 304, and GET with `Accept-Encoding: gzip`. Prints requests
# per second and bantin's ratio to nginx for each, and the server's CPU time per
# request (user + system, all of its processes), which a busy machine disturbs less
# than the rate. Installs nginx and wrk from the Debian packages when missing.
#
# Run from the repository: benches/serve_vs_nginx.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${1:-10}"
CONNECTIONS=64
THREADS=2
ITEMS=50

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nginx wrk
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# BANTIN_BIN=path measures another build (say, the one before a change) the same way.
[ -n "${BANTIN_BIN:-}" ] || cargo build --release --quiet --bin bantin
BANTIN="${BANTIN_BIN:-$PWD/target/release/bantin}"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
BANTIN_PORT="$(free_port)"
NGINX_PORT="$(free_port)"

# The articles: 50 saved pages with a few kilobytes of text each, like a real news
# feed; bantin stores and publishes them, and nginx serves the feed bantin published.
mkdir -p "$work/pages"
# Words drawn at random per page, so that dedup keeps every page as its own story.
python3 - "$work/pages" "$ITEMS" <<'PY'
import random, sys
folder, items = sys.argv[1], int(sys.argv[2])
words = ("lực lượng công an triển khai đồng bộ biện pháp bảo đảm an ninh trật tự phòng "
         "ngừa đấu tranh tội phạm vi phạm pháp luật địa bàn tuần tra kiểm soát giao thông "
         "điều tra xử lý chi bộ đảng viên nghị quyết cháy nổ cứu nạn biên giới hàng hóa").split()
rng = random.Random(1)
for n in range(1, items + 1):
    body = "".join(
        "<p>" + " ".join(rng.choice(words) for _ in range(40)) + ".</p>" for _ in range(24)
    )
    with open(f"{folder}/bai-{n}.html", "w", encoding="utf-8") as page:
        page.write(
            f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Bài viết số {n}'
            f'</title></head><body><article><h1>Bài viết số {n}</h1><div class="body">{body}'
            "</div></article></body></html>\n"
        )
PY

# bantin: the test configuration, its state and feeds in the work folder.
mkdir -p "$work/bantin"
cp -r tests/fixtures/publish/config "$work/bantin/config"
sed -i "s/127.0.0.1:0/127.0.0.1:$BANTIN_PORT/" "$work/bantin/config/bantin.toml"
printf 'data_dir = "../data"\nfeeds_dir = "../feeds"\n' >>"$work/bantin/config/bantin.toml"
RUST_LOG=warn "$BANTIN" --config "$work/bantin/config/bantin.toml" ingest "$work/pages" >/dev/null
feed="$work/bantin/feeds/all.rss"
RUST_LOG=warn "$BANTIN" --config "$work/bantin/config/bantin.toml" serve \
    >"$work/bantin.log" 2>&1 &
pids+=($!)
BANTIN_PID=$!

# nginx: the same file, its own prefix, no access log.
mkdir -p "$work/nginx/html"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
$([ "$(id -u)" -eq 0 ] && echo "user root;")
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    gzip on;
    gzip_types application/rss+xml;
    types { application/rss+xml rss; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $work/nginx/html;
    }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
NGINX_PID=$!

wait_for() {
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "nothing answers at $1" >&2
    exit 1
}
wait_for "http://127.0.0.1:$BANTIN_PORT/feeds/all.rss"
cp "$feed" "$work/nginx/html/all.rss"
BANTIN_URL="http://127.0.0.1:$BANTIN_PORT/feeds/all.rss"
NGINX_URL="http://127.0.0.1:$NGINX_PORT/all.rss"
wait_for "$NGINX_URL"
size="$(stat -c %s "$feed")"
served=0
for _ in $(seq 1 100); do
    served="$(curl -s "$BANTIN_URL" | wc -c)"
    [ "$served" -eq "$size" ] && break
    sleep 0.1
done
[ "$served" -eq "$size" ] || { echo "bantin serves $served bytes, not the $size of the file" >&2; exit 1; }

etag() { curl -sI "$1" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p'; }

# CPU clock ticks (user + system) used so far by the process PID and its children.
ticks() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$total"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# "RATE CPU_US": requests per second of one wrk run against URL (optional header), and
# the CPU microseconds the server process PID spent per request.
rate() {
    local url="$1" header="${2:-}" pid="$3"
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s")
    [ -n "$header" ] && args+=(-H "$header")
    local before out after
    before="$(ticks "$pid")"
    out="$(wrk "${args[@]}" "$url")"
    after="$(ticks "$pid")"
    echo "$out" | awk -v t=$(((after - before) * TICK_US)) \
        '/^Requests\/sec:/ { r = $2 } /requests in/ { n = $1 } END { printf "%s %.1f", r, t / n }'
}

# The gzip responses must be compressed, or the comparison means nothing.
for url in "$BANTIN_URL" "$NGINX_URL"; do
    curl -sI -H 'Accept-Encoding: gzip' "$url" | grep -qi '^content-encoding: gzip' ||
        { echo "$url does not answer gzip" >&2; exit 1; }
done

for url in "$BANTIN_URL" "$NGINX_URL"; do
    status="$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $(etag "$url")" "$url")"
    [ "$status" = 304 ] || { echo "$url answers $status to its own ETag" >&2; exit 1; }
done

printf 'file: %s bytes, %d items; wrk %d connections, %ss per run\n' \
    "$size" "$ITEMS" "$CONNECTIONS" "$SECONDS_PER_RUN"
printf '%-6s %12s %12s %7s %12s %12s %7s\n' mode bantin/s nginx/s ratio 'bantin µs' 'nginx µs' ratio
for mode in plain 304 gzip; do
    case "$mode" in
        plain) b_header="" n_header="" ;;
        304) b_header="If-None-Match: $(etag "$BANTIN_URL")"
             n_header="If-None-Match: $(etag "$NGINX_URL")" ;;
        gzip) b_header="Accept-Encoding: gzip" n_header="Accept-Encoding: gzip" ;;
    esac
    read -r b b_cpu <<<"$(rate "$BANTIN_URL" "$b_header" "$BANTIN_PID")"
    read -r n n_cpu <<<"$(rate "$NGINX_URL" "$n_header" "$NGINX_PID")"
    printf '%-6s %12s %12s %6.2fx %12s %12s %6.2fx\n' "$mode" "$b" "$n" \
        "$(echo "$b $n" | awk '{ print $1 / $2 }')" "$b_cpu" "$n_cpu" \
        "$(echo "$n_cpu $b_cpu" | awk '{ print $1 / $2 }')"
done
