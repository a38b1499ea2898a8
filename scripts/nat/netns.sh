#!/usr/bin/env bash
# Builds (up) or removes (down) the network namespaces of the real-NAT tests.
#
#   pp-pub          the "internet": peers listen on 198.18.100.1 and 198.18.100.2 (on its lo)
#   pp-nat<i>       a NAT router per client: outside 198.18.<i>.2/24 (MASQUERADE), inside 198.19.<i>.1/24
#   pp-cli<i>       a client host behind it: 198.19.<i>.2/24, default route via the NAT router
#
# Only addresses from 198.18.0.0/15 are used. Usage: netns.sh up N [conntrack_udp_timeout_s] | down
set -euo pipefail
prefix=${PP_NS_PREFIX:-pp}

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep "^${prefix}-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  local n=$1 timeout=${2:-5}
  down
  ip netns add "${prefix}-pub"
  ip -n "${prefix}-pub" link set lo up
  ip -n "${prefix}-pub" addr add 198.18.100.1/32 dev lo
  ip -n "${prefix}-pub" addr add 198.18.100.2/32 dev lo
  for i in $(seq 1 "$n"); do
    local nat="${prefix}-nat$i" cli="${prefix}-cli$i"
    ip netns add "$nat"
    ip netns add "$cli"
    ip -n "$nat" link set lo up
    ip -n "$cli" link set lo up
    # public side
    ip link add "ppo$i" netns "${prefix}-pub" type veth peer name out netns "$nat"
    ip -n "${prefix}-pub" addr add "198.18.$i.1/24" dev "ppo$i"
    ip -n "${prefix}-pub" link set "ppo$i" up
    ip -n "$nat" addr add "198.18.$i.2/24" dev out
    ip -n "$nat" addr add "198.18.$i.3/24" dev out
    ip -n "$nat" link set out up
    ip -n "$nat" route add default via "198.18.$i.1"
    # private side
    ip link add in netns "$nat" type veth peer name eth0 netns "$cli"
    ip -n "$nat" addr add "198.19.$i.1/24" dev in
    ip -n "$nat" link set in up
    ip -n "$cli" addr add "198.19.$i.2/24" dev eth0
    ip -n "$cli" link set eth0 up
    ip -n "$cli" route add default via "198.19.$i.1"
    ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$nat" iptables -t nat -A POSTROUTING -o out -j MASQUERADE
    # the first packet creates the conntrack entry, so the timeouts must exist in this namespace
    ip netns exec "$nat" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$timeout" || true
    ip netns exec "$nat" sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream="$timeout" || true
  done
}

case "${1:-}" in
  up) up "${2:?number of client hosts}" "${3:-5}" ;;
  down) down ;;
  *) echo "usage: $0 up N [conntrack_udp_timeout_s] | down" >&2; exit 2 ;;
esac
