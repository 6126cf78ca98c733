#!/usr/bin/env bash
# Two `interop-sim peer` processes, Alice and Bob, hold a conversation: Bob publishes a bundle,
# Alice starts a session from it (X3DH) and sends a prekey message, Bob answers with a normal
# message. Run from the repository root: docs/examples/peer-session.sh (needs jq and base64).
set -euo pipefail
sim=${SIM:-target/release/interop-sim}
[ -x "$sim" ] || cargo build --release --quiet
dir=$(mktemp -d)
trap 'exec 3>&- 4<&- 5>&- 6<&-; wait; rm -rf "$dir"' EXIT
mkfifo "$dir/a.in" "$dir/a.out" "$dir/b.in" "$dir/b.out"
"$sim" peer <"$dir/a.in" >"$dir/a.out" &
"$sim" peer <"$dir/b.in" >"$dir/b.out" &
exec 3>"$dir/a.in" 4<"$dir/a.out" 5>"$dir/b.in" 6<"$dir/b.out"
alice() { echo "> alice $1" >&2; echo "$1" >&3; read -r line <&4; echo "< $line" >&2; echo "$line"; }
bob() { echo "> bob   $1" >&2; echo "$1" >&5; read -r line <&6; echo "< $line" >&2; echo "$line"; }
b64() { printf '%s' "$1" | base64; }

alice '{"op":"init","name":"alice","registration_id":1,"device_id":1,"seed":1}' >/dev/null
bob '{"op":"init","name":"bob","registration_id":2,"device_id":1,"seed":2}' >/dev/null
bundle=$(bob '{"op":"bundle"}')
alice "{\"op\":\"start\",\"peer\":\"bob\",\"bundle\":$bundle}" >/dev/null
hello=$(alice "{\"op\":\"encrypt\",\"peer\":\"bob\",\"plaintext\":\"$(b64 hello)\"}")
read_by_bob=$(bob "$(jq -c '{op: "decrypt", peer: "alice", type, body}' <<<"$hello")")
reply=$(bob "{\"op\":\"encrypt\",\"peer\":\"alice\",\"plaintext\":\"$(b64 'hi alice')\"}")
read_by_alice=$(alice "$(jq -c '{op: "decrypt", peer: "bob", type, body}' <<<"$reply")")
echo "bob read:   $(jq -r .plaintext <<<"$read_by_bob" | base64 -d) (type $(jq -r .type <<<"$hello"))"
echo "alice read: $(jq -r .plaintext <<<"$read_by_alice" | base64 -d) (type $(jq -r .type <<<"$reply"))"
