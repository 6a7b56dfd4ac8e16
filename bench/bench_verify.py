"""How long `audit verify` takes on a ledger of N records (default 1,000,000).

Builds the ledger through retentiond itself (AuditLedger.append_many in chunks, every record
signed as a run signs it), with a signed checkpoint every 10,000 records, then times, side by
side and ``--rounds`` times each, the chain alone (hashes and links: what verification cost
before records were signed) and the whole of ``audit verify`` (record signatures, checkpoints,
intents); prints the medians and their ratio.
Usage: python bench/bench_verify.py [--records N] [--state URL] [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.evidence import EvidenceAuditor, Signer, write_checkpoint
from retentiond.ledger.state import StateDB

CHUNK = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--state", help="state DB URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.state or f"sqlite:///{Path(tmp) / 'state.db'}"
        state = StateDB(url)
        signer = Signer("bench/audit", Ed25519PrivateKey.generate())
        ledger = AuditLedger(state, vouch=signer.vouch)
        started = time.perf_counter()
        written = 0
        while written < args.records:
            size = min(CHUNK - 1, args.records - written - 1)
            entries = []
            for n in range(size // 2):
                batch = f"b{written + n}"
                entries += [Entry(Kind.INTENT, rule="r", action="delete", batch_id=batch,
                                  body={"count": 1, "keys_digest": "0" * 64}),
                            Entry(Kind.OUTCOME, rule="r", action="delete", batch_id=batch,
                                  body={"status": "applied", "keys": [[written + n]],
                                        "count": 1})]
            ledger.append_many(entries)
            write_checkpoint(ledger, signer)
            written += len(entries) + 1
        built = time.perf_counter() - started
        chain_only, whole = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            plain = ledger.verify()
            chain_only.append(time.perf_counter() - started)
            started = time.perf_counter()
            auditor = EvidenceAuditor("bench/audit", signer.key.public_key(), timedelta(hours=1),
                                      datetime.now(tz=UTC), pairing=ledger.pairing_problems())
            result = ledger.verify(auditor)
            whole.append(time.perf_counter() - started)
        chain, seconds = statistics.median(chain_only), statistics.median(whole)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"state {url.split(':')[0]}: {result.records:,} records built in {built:.1f} s; "
              f"median of {args.rounds}: chain only ok={plain.ok} {chain:.1f} s, whole verify "
              f"ok={result.ok} warnings={len(result.warnings)} {seconds:.1f} s "
              f"({result.records / seconds:,.0f} records/s, x{seconds / chain:.2f} the chain "
              f"alone), peak RSS {peak:.0f} MB")
        state.close()


if __name__ == "__main__":
    main()
