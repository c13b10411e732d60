#!/usr/bin/env bash
# Cassandra's commit log modes side by side: restart Cassandra in each, run the system (`cart run`), measure.
# Needs the services up and nothing else on the API's port; leaves Cassandra in the default mode. About 10 min.
set -uo pipefail
cd "$(dirname "$0")/../.."
for round in 1 2; do
  for mode in periodic group batch; do
    echo "=== round $round mode $mode $(date +%T)"
    export CART_CASSANDRA_COMMITLOG_SYNC=$mode
    .venv/bin/python -c "
from app.settings import get_settings; from app.tools.services import Cassandra
c = Cassandra(get_settings()); c.down(); c.up()"
    grep -E "^commitlog_sync" .state/cassandra/cassandra.yaml
    .venv/bin/cart run > /tmp/cl-run-$mode-$round.log 2>&1 &
    RUN=$!
    for _ in $(seq 120); do curl -sf localhost:9001/ready >/dev/null && break; sleep 1; done
    sleep 5
    .venv/bin/cart bench append-ceiling saturation open-loop --seconds 20 --rates 200,500 --level-seconds 15 \
       --append-concurrencies 16,64 --fence-partitions 16 --out /tmp/cl-$mode-$round > /tmp/cl-bench-$mode-$round.log 2>&1
    echo "bench exit $?"
    kill -TERM $RUN; wait $RUN
    python3 -c "
import json; d=json.load(open('/tmp/cl-$mode-$round/latest.json'))
print({k: d.get(k) for k in ['commands_per_s','cpu_ms_per_command','p99_ms_at_200_per_s','p99_ms_at_500_per_s','append_ceiling_per_s']})
" 2>&1
  done
done
echo "=== back to the default"
unset CART_CASSANDRA_COMMITLOG_SYNC
.venv/bin/python -c "
from app.settings import get_settings; from app.tools.services import Cassandra
c = Cassandra(get_settings()); c.down(); c.up()"
echo DONE
