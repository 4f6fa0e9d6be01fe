"""The request and response shapes of POST /predict, for the OpenAPI document only.

Requests are parsed by `predict.make_document` (the one parser of `predict.py`'s JSON input
forms) and answered with `Predictor`'s own dicts; these models describe those forms so that
/openapi.json and /docs show them. They never validate anything at run time."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel


class TargetObject(BaseModel):
    start: int = Field(description="first character (text) or token (tokens) of the target")
    end: int = Field(description="end, exclusive")
    type: Optional[str] = Field(None, description="entity type of the target (optional)")


class TextItem(BaseModel):
    """Raw text: split into sentences and KazNERD-style words; character offsets into `text`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "examples": [{"text": "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады.",
                      "targets": [[21, 40]], "id": "doc-1"}]})
    text: str
    targets: Optional[list[Union[list[Union[int, str]], TargetObject]]] = Field(
        None, description="stance targets as character spans [start, end] or [start, end, type] or "
                          '{"start", "end", "type"} (a span that cuts a word is widened to whole words); '
                          "needs a stance checkpoint. Without it a NER+stance server takes the predicted "
                          "entities of the target types")


class TokensItem(BaseModel):
    """One pre-tokenised sentence; its text is the tokens joined by single spaces."""

    model_config = ConfigDict(extra="allow")
    tokens: list[str]
    targets: Optional[list[Union[list[Union[int, str]], TargetObject]]] = Field(
        None, description="stance targets as token spans [start, end) (end exclusive)")
    start: Optional[int] = Field(None, description="the stance-item form: one target, first token")
    end: Optional[int] = Field(None, description="the stance-item form: one target, end token (exclusive)")


Item = Union[str, TextItem, TokensItem]


class PredictRequest(RootModel[Union[Item, list[Item]]]):
    """One text (a string or an object), or a list of them (answered with a list, in order)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады.",
        ["Астана қаласы.", {"text": "Тоқаев келді.", "id": 7}],
    ]})


class Sentence(BaseModel):
    start: int
    end: int
    token_start: int
    token_end: int


class Token(BaseModel):
    text: str
    start: int
    end: int


class Entity(BaseModel):
    text: str
    type: str
    token_start: int
    token_end: int = Field(description="exclusive")
    char_start: int
    char_end: int = Field(description="exclusive: text[char_start:char_end] is the entity")
    score: float = Field(description="mean over its words of the probability of the predicted tag")
    sentence: int


class Target(BaseModel):
    text: str
    type: Optional[str]
    token_start: int
    token_end: int
    char_start: int
    char_end: int
    sentence: int
    label: str = Field(description="NONE, FAVOR or AGAINST")
    probs: dict[str, float]


class Prediction(BaseModel):
    """`predict.py`'s output schema; other keys of the request object (e.g. "id") are copied."""

    model_config = ConfigDict(extra="allow")
    text: str
    sentences: list[Sentence]
    tokens: list[Token]
    entities: list[Entity]
    targets: list[Target]


class ErrorBody(BaseModel):
    status: int
    error: str = Field(description="a stable code: bad_json, bad_encoding, invalid_input, too_large, "
                                   "queue_full, timeout, not_found, method_not_allowed, internal_error")
    message: str
    field: Optional[str] = Field(None, description="where in the request body, e.g. body[2].targets[0]")
    limit: Optional[int] = None


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    task: str
    backend: str
    model: dict
    labels: dict
    versions: dict
    limits: dict
    queue: dict
