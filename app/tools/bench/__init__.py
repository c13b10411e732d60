"""`cart bench`: measure the running system and the machine it runs on, in one run; write `bench/latest.json`,
`bench/latest.md` and plots.

Parts (each can run alone: `cart bench PART ...`):

- ceilings of this machine: conditional appends to a journal-shaped table (`ceilings.append_ceiling`), Kafka
  produce+consume (`ceilings.kafka_ceiling`), HTTP requests on `/health` of the running API
  (`ceilings.http_ceiling`);
- the workload through the HTTP API (`workload`): closed-loop saturation, then open loop at fixed offered loads
  with latency from the scheduled send time;
- CPU per command, for the whole machine and per process of the system (`cpu`);
- projections: catch-up over a backlog in a system of the bench's own, and how soon a checkout is readable
  (`projections`);
- rebuild and verify timed against a keyspace the operator names (`offline`);
- where the time goes in the worker and the API, with py-spy (`profiling`).

`runner` puts them together, `report` writes what they measured. Timings on a shared machine vary from run to
run: compare runs made the same way, not single numbers.
"""
