"""A Python workload whose output does not depend on the allocator.

Run with and without liblarder_malloc.so preloaded; the outputs must match.
Every line is a deterministic summary of one part of the workload.
"""
import gc
import hashlib
import json
import random
import re
import threading
import zlib


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def big_dict(rng):
    d = {}
    for i in range(200_000):
        d[f"key-{i}-{rng.randrange(1 << 30)}"] = (i, str(i * 7), [i] * (i % 5))
    # Delete a third and reinsert, so the table shrinks and regrows.
    for k in list(d)[::3]:
        del d[k]
    for i in range(50_000):
        d[("t", i)] = {"n": i, "s": "x" * (i % 40)}
    total = sum(v[0] if isinstance(v, tuple) else v["n"] for v in d.values())
    return f"dict: {len(d)} entries, total {total}, digest {digest(sorted(map(str, d))[:1000])}"


def json_round_trip(rng):
    doc = {
        "users": [
            {"id": i, "name": f"user{i}", "tags": [f"t{j}" for j in range(i % 7)],
             "score": rng.random(), "nested": {"a": [1, 2, {"b": None}], "c": i % 2 == 0}}
            for i in range(12_000)
        ],
        "meta": {"version": 3, "text": "caf\u00e9 \u2603 " * 1000},
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    assert back == doc
    again = json.dumps(back, sort_keys=True, indent=1)
    return f"json: {len(text)} chars, indented {len(again)}, digest {hashlib.sha256(text.encode()).hexdigest()[:16]}"


def sorting(rng):
    ints = [rng.randrange(-10**9, 10**9) for _ in range(200_000)]
    strs = [f"{rng.random():.12f}-{i}" for i, _ in enumerate(range(100_000))]
    ints.sort()
    strs.sort(key=lambda s: (len(s), s[::-1]))
    pairs = sorted(zip(ints[::3], strs), key=lambda p: (p[1][-3:], p[0]))
    return f"sort: {ints[0]} {ints[len(ints) // 2]} {ints[-1]}, digest {digest(pairs[:500] + pairs[-500:])}"


class Node:
    def __init__(self, value, left=None, right=None):
        self.value = value
        self.left = left
        self.right = right
        self.cache = {"v": value}


class Slotted:
    __slots__ = ("a", "b", "c")

    def __init__(self, a, b, c):
        self.a, self.b, self.c = a, b, c


def build(depth, counter):
    if depth == 0:
        counter[0] += 1
        return Node(counter[0])
    return Node(depth, build(depth - 1, counter), build(depth - 1, counter))


def tree_sum(node):
    total, stack = 0, [node]
    while stack:
        n = stack.pop()
        total += n.value + len(n.cache)
        if n.left is not None:
            stack.append(n.left)
            stack.append(n.right)
    return total


def objects():
    sums = []
    for round_ in range(2):
        root = build(14, [0])
        sums.append(tree_sum(root))
        items = [Slotted(i, str(i), (i, round_)) for i in range(100_000)]
        sums.append(sum(s.a for s in items if s.c[0] % 3 == 0))
        # Reference cycles for the cycle collector.
        ring = [Node(i) for i in range(20_000)]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            a.left = b
        del ring, items, root
        gc.collect()
    return f"objects: {sums}"


def regexes(rng):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    text = " ".join(f"{rng.choice(words)}{rng.randrange(1000)}@{rng.choice(words)}.org" for _ in range(60_000))
    emails = re.findall(r"([a-z]+)(\d+)@([a-z]+)\.org", text)
    replaced = re.sub(r"(\d+)", lambda m: str(int(m.group(1)) * 2), text)
    compiled = [re.compile(rf"{w}\d{{{n}}}\b") for w in words for n in range(1, 4)]
    counts = [len(c.findall(text)) for c in compiled]
    return f"re: {len(emails)} matches, {len(replaced)} chars, counts {counts}, digest {digest(emails[:300])}"


def buffers():
    chunks = []
    buf = bytearray()
    for i in range(20_000):
        buf += bytes([i % 251]) * (i % 300)
        if i % 5000 == 4999:
            chunks.append(zlib.crc32(buf))
            buf = bytearray(buf[len(buf) // 2:])
    big = b"".join(bytes([i % 256]) * 4096 for i in range(12_000))  # ~48 MiB
    text = "-".join(str(i) for i in range(500_000))
    return f"buffers: {chunks}, {zlib.crc32(big)}, {len(text)} {zlib.crc32(text.encode())}"


def threads():
    results = [None] * 4

    def work(k):
        rng = random.Random(k)
        acc = {}
        for i in range(50_000):
            key = rng.randrange(5000)
            acc.setdefault(key, []).append(i)
        results[k] = sum(len(v) * k0 for k0, v in acc.items())

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return f"threads: {results}"


def main():
    rng = random.Random(20240601)
    lines = [
        big_dict(rng),
        json_round_trip(rng),
        sorting(rng),
        objects(),
        regexes(rng),
        buffers(),
        threads(),
    ]
    for line in lines:
        print(line)
    print("checksum", hashlib.sha256("\n".join(lines).encode()).hexdigest())


if __name__ == "__main__":
    main()
