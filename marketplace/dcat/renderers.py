"""DRF renderers for linked data: JSON-LD and Turtle, from an rdflib Graph or a JSON-LD document (dict).

Error bodies are not linked data: the views (marketplace/apis/dcat.py) render them with the ordinary
JSON renderer, so a refused request looks the same whatever the client asked for."""

import json
from typing import Any

from rdflib import Graph
from rest_framework.renderers import BaseRenderer

from marketplace.dcat.vocab import PREFIXES

# Compact JSON-LD for graphs: the usual prefixes, so keys read dcat:title rather than full IRIs.
GRAPH_CONTEXT = {prefix: str(namespace) for prefix, namespace in PREFIXES.items()} | {
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def as_graph(data: Any) -> Graph:
    if isinstance(data, Graph):
        return data
    return Graph().parse(data=json.dumps(data), format="json-ld")


class JsonLdRenderer(BaseRenderer):
    media_type = "application/ld+json"
    format = "jsonld"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, Graph):
            return data.serialize(format="json-ld", context=GRAPH_CONTEXT, auto_compact=True).encode()
        return json.dumps(data, ensure_ascii=False, indent=2).encode()


class TurtleRenderer(BaseRenderer):
    media_type = "text/turtle"
    format = "ttl"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        graph = as_graph(data)
        for prefix, namespace in PREFIXES.items():
            graph.bind(prefix, namespace)
        return graph.serialize(format="turtle").encode()
