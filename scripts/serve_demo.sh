#!/usr/bin/env bash
# Starts the demo study server, lets simulated participants take the study once, prints the links
# and keeps the server in the foreground (Ctrl-C stops it). Called by `make demo`. DEMO_USEFULNESS_STUDY, when
# set and open, names the usefulness study beside it: its bots answer as the model did (CAM's panels 0.8 of the
# time).
set -euo pipefail
study=${DEMO_STUDY:?} port=${DEMO_PORT:-8000} demo=${DEMO_DIR:?} py=${PY:-.venv/bin/python}
useful=${DEMO_USEFULNESS_STUDY:-}
base="http://127.0.0.1:${port}"

"$py" manage.py runserver "127.0.0.1:${port}" --noreload --skip-checks >"${demo}/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
  curl -fsS -o /dev/null "${base}/s/${study}/" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "the server did not start; see ${demo}/server.log" >&2; exit 1; }
  sleep 0.2
done

if [ ! -e "${demo}/.simulated" ]; then
  "$py" manage.py simulate_participants --study "$study" --n "${DEMO_BOTS:-20}" --policy prefer:bla_t:0.7 --url "$base"
  touch "${demo}/.simulated"
fi
if [ -n "$useful" ] && ! curl -fsS -o /dev/null "${base}/s/${useful}/" 2>/dev/null; then
  useful=""  # not imported (make demo-usefulness left it out): serve the preference study alone
fi
if [ -n "$useful" ] && [ ! -e "${demo}/.simulated-usefulness" ]; then
  "$py" manage.py simulate_participants --study "$useful" --n "${DEMO_BOTS:-20}" --policy match:0.5,cam=0.8 --url "$base"
  touch "${demo}/.simulated-usefulness"
fi

echo
echo "server running at ${base}  (log: ${demo}/server.log; Ctrl-C stops it)"
echo "  participant link: ${base}/s/${study}/"
echo "  dashboard:        ${base}/research/${study}/   (researcher login above)"
if [ -n "$useful" ]; then
  echo "  usefulness study (distinction): ${base}/s/${useful}/   dashboard: ${base}/research/${useful}/"
fi
echo "  report:           make report"
echo "  new researcher password (the demo's database): DATABASE_URL=${DATABASE_URL:-sqlite:///${PWD}/${demo}/db.sqlite3} ${py} manage.py changepassword researcher"
wait "$server"
