# Sourced by the serving shell tests. wait_for_port LOG PID PREFIX SECONDS:
# waits until LOG has a line "...PREFIX<port>..." and prints the port; fails
# (status 1, the reason on stderr) when process PID exits first or SECONDS
# pass. The server logs "listening on http://HOST:PORT" at once and
# "gRPC on HOST:PORT" after the model is loaded.
wait_for_port() {
  local log=$1 pid=$2 prefix=$3 seconds=$4 port=""
  for _ in $(seq 1 $((seconds * 10))); do
    port=$(sed -n "s#.*${prefix}\([0-9][0-9]*\).*#\1#p" "$log" | head -1)
    if [[ -n "$port" ]]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "the server exited before logging '${prefix}<port>'" >&2; return 1; }
    sleep 0.1
  done
  echo "no '${prefix}<port>' line in ${seconds} s" >&2
  return 1
}
