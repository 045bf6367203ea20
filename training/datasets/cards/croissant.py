"""croissant.json: Croissant 1.1 core metadata with the Responsible AI vocabulary 1.0.

The files are FileObjects with their sha256 from the manifest; each Parquet file is a
RecordSet whose fields name its columns; the rai: properties say how the data was collected,
reviewed, filtered and stripped of personal data (cards.text, from cards.facts).
Spec: https://docs.mlcommons.org/croissant/docs/croissant-spec-1.1.html and
https://docs.mlcommons.org/croissant/docs/croissant-rai-spec.html.
"""

from __future__ import annotations

from typing import Any

from training.datasets.cards import text
from training.datasets.formats import PARQUET, parquet

CROISSANT_FILE = "croissant.json"
CONFORMS_TO = ["http://mlcommons.org/croissant/1.1", "http://mlcommons.org/croissant/RAI/1.0"]
ENCODING = {PARQUET: "application/x-parquet"}
JSON_LINES = "application/jsonlines"
# The standard @context of Croissant 1.1 (as the spec's examples and mlcroissant write it).
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def _file_object(f, stats: dict) -> dict:
    return {
        "@type": "cr:FileObject",
        "@id": f.name,
        "name": f.name,
        "contentUrl": f.name,
        "contentSize": f"{stats['bytes']} B",
        "encodingFormat": ENCODING.get(f.file_format, JSON_LINES),
        "sha256": stats["sha256"],
    }


def _record_set(f) -> dict:
    """Columns of one Parquet file; a list of messages is a repeated text field."""
    set_id = f.name.removesuffix(".parquet")
    fields = []
    for column, kind in parquet.COLUMNS[f.row_format]:
        field = {
            "@type": "cr:Field",
            "@id": f"{set_id}/{column}",
            "name": column,
            "dataType": "sc:Text",
            "source": {"fileObject": {"@id": f.name}, "extract": {"column": column}},
        }
        if kind == parquet.MESSAGES:
            field["description"] = "list of {role, content} messages"
        fields.append(field)
    return {"@type": "cr:RecordSet", "@id": set_id, "name": set_id, "field": fields}


def croissant(facts: dict[str, Any], files: list) -> dict:
    stats = facts["files"]
    timeframe = [t for t in (facts["timeframe"]["first"], facts["timeframe"]["last"]) if t]
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": f"{facts['name']}-v{facts['version']}",
        "description": facts["description"]
        or f"A {facts['kind']} dataset curated and reviewed with Flywheel.",
        "license": facts["license"],
        "version": f"{facts['version']}.0.0",
        "datePublished": facts["frozen_at"],
        "keywords": ["flywheel", facts["kind"], *facts["formats"]],
        "distribution": [_file_object(f, stats[f.name]) for f in files],
        "recordSet": [_record_set(f) for f in files if f.file_format == PARQUET],
        "rai:dataCollection": text.data_collection(facts),
        "rai:dataCollectionTimeframe": timeframe,
        "rai:dataAnnotationProtocol": text.annotation_protocol(facts),
        "rai:annotationsPerItem": text.annotations_per_item(facts),
        "rai:dataAnnotationAnalysis": text.annotation_analysis(facts),
        "rai:machineAnnotationTools": text.machine_annotation_tools(facts),
        "rai:personalSensitiveInformation": text.personal_information(facts),
        "rai:dataPreprocessingProtocol": text.preprocessing(facts),
        "rai:dataLimitations": text.LIMITATIONS,
    }
