"""Replica identity and the assignment of groups to live replicas (pure: no I/O, no clock).

* ``new_replica_id()``: the id a process takes at start (host, pid and a random part, so a restarted process
  with a recycled pid is a different replica).
* ``rendezvous_owner`` / ``assign_groups``: highest-random-weight (rendezvous) hashing of group names over
  replica ids. Every replica computes the same answer from the same set of live replicas; a replica that
  joins takes about 1/N of the groups from the others and nothing else moves; one that leaves gives away
  only its own groups.

Used by ``store.sql_leases`` (``SqlStore.balance_groups``) and by ``act`` / ``service`` (the id at start).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterable, Sequence

MAX_ID_LENGTH = 200


def new_replica_id(host: str | None = None, pid: int | None = None) -> str:
    """``host:pid:random`` (8 hex digits of randomness)."""
    host = (host if host is not None else socket.gethostname()) or "localhost"
    pid = pid if pid is not None else os.getpid()
    return f"{host[:120]}:{pid}:{secrets.token_hex(4)}"


def _weight(replica: str, group: str) -> int:
    digest = hashlib.blake2b(f"{replica}\x00{group}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_owner(group: str, replicas: Iterable[str]) -> str | None:
    """The replica that should drive ``group`` among ``replicas`` (None when there is none). Ties (which
    need a 64-bit hash collision) go to the smaller id, so the answer never depends on the order given."""
    best: tuple[int, str] | None = None
    for replica in replicas:
        key = (_weight(replica, group), replica)
        if best is None or key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
            best = key
    return best[1] if best is not None else None


def assign_groups(groups: Iterable[str], replicas: Sequence[str]) -> dict[str, str]:
    """Group → the replica that should drive it (empty when there is no replica)."""
    ids = sorted(set(replicas))
    if not ids:
        return {}
    out: dict[str, str] = {}
    for group in groups:
        owner = rendezvous_owner(group, ids)
        assert owner is not None
        out[group] = owner
    return out
