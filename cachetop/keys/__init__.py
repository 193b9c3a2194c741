"""Provides cachetop's key analysis, headless: where the memory goes, per prefix and per type.

Redis: a paced SCAN (every key, or pages spread over the keyspace) whose keys are described
in small server-side batches (TYPE, OBJECT ENCODING, MEMORY USAGE, PTTL, element counts);
memcached: `lru_crawler metadump` and `stats detail`. Everything blocks: run it in a worker
thread. The aggregation (tally.py, estimate.py, prefixes.py) is pure and tested apart.
"""
