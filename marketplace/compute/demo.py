"""A deterministic synthetic orders table (no real person in it) for the demo, the tests and the bench:
one row per customer, with the customer's province and city (quasi-identifiers), a basket size
(plain) and a customer id (the identifier). One province is deliberately tiny so the release policy
has a group to suppress."""

import random

PROVINCES: dict[str, tuple[str, ...]] = {
    "Guangdong": ("Guangzhou", "Shenzhen", "Dongguan", "Foshan", "Zhuhai"),
    "Guangxi": ("Nanning", "Guilin", "Liuzhou"),
    "Hunan": ("Changsha", "Zhuzhou", "Xiangtan"),
    "Fujian": ("Fuzhou", "Xiamen", "Quanzhou"),
    "Jiangxi": ("Nanchang", "Ganzhou"),
    "Hainan": ("Haikou", "Sanya"),
}
WEIGHTS = (50, 12, 12, 12, 8, 6)  # percent of customers per province, in PROVINCES order
TINY = ("Xizang", "Lhasa")  # fewer than k customers: always suppressed
TINY_ROWS = 3
COLUMNS = {
    "province": "quasi_identifier",
    "city": "quasi_identifier",
    "basket_size": "plain",
    "customer_id": "identifier",
}


def demo_orders_rows(rows: int = 5000, *, seed: int = 2026) -> list[tuple[str, str, int, int]]:
    rng = random.Random(seed)
    names = list(PROVINCES)
    out: list[tuple[str, str, int, int]] = []
    for customer in range(1, rows - TINY_ROWS + 1):
        province = rng.choices(names, weights=WEIGHTS)[0]
        city = rng.choice(PROVINCES[province])
        basket = max(1, min(400, int(rng.gauss(60 + 5 * names.index(province), 25))))
        out.append((province, city, basket, 100000 + customer))
    for extra in range(TINY_ROWS):
        out.append((TINY[0], TINY[1], 40 + extra, 90_000_000 + extra))
    return out


def demo_orders_csv(rows: int = 5000, *, seed: int = 2026) -> bytes:
    lines = ["province,city,basket_size,customer_id"]
    lines += [f"{p},{c},{b},{i}" for p, c, b, i in demo_orders_rows(rows, seed=seed)]
    return ("\n".join(lines) + "\n").encode()
