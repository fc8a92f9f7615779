"""Reading rule packs: the compiled set the engine evaluates, cached per process by content."""

from threading import Lock

from compliance.engine import CompiledPack, compile_pack
from compliance.models import RulePack

_cache: dict[tuple[tuple[str, str], ...], list[CompiledPack]] = {}
_cache_lock = Lock()


def rulepacks_compiled() -> list[CompiledPack]:
    """Every loaded version, compiled. One cheap query per call; compiling happens only when the
    set of versions changes (a new version has a new id, and versions never change)."""
    key = tuple(RulePack.objects.order_by("id").values_list("id", "checksum"))
    key = tuple((str(i), c) for i, c in key)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    packs = [compile_pack(p.content) for p in RulePack.objects.all()]
    with _cache_lock:
        _cache.clear()
        _cache[key] = packs
    return packs
