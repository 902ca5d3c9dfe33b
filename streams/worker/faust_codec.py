"""The lrx Avro codec, plugged into faust's codec registry as `lrx-avro`.

Topics of the pipeline name `value_serializer="lrx-avro"`, so agents receive
decoded messages. Outputs are encoded by streams/worker/messages.py and sent as bytes.

Decoding never raises: faust would log an undecodable value and move past it,
losing it. Instead the agent receives a `Decoded` that carries the error and
the exact bytes, and dead-letters it itself.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from schemas.codec import Codec, CodecError
from streams.worker.messages import Decoded

__all__ = ["CODEC_NAME", "Decoded", "AvroFaustCodec", "register_codec"]

CODEC_NAME = "lrx-avro"


class AvroFaustCodec(codecs.Codec):
    """faust codec over schemas.codec: single-object Avro in, `Decoded` out."""

    def __init__(self, codec: Codec, **kwargs: Any) -> None:
        self.codec = codec
        super().__init__(**kwargs)

    def _loads(self, data: bytes) -> Decoded:
        try:
            name, record = self.codec.decode_any(data)
        except CodecError as error:
            return Decoded(raw=bytes(data), error=error)
        return Decoded(raw=bytes(data), name=name, record=record)

    def _dumps(self, value: bytes) -> bytes:
        # The worker writes its outputs already encoded (streams/worker/messages.py), with
        # the producer; faust needs this only to satisfy its codec interface.
        return bytes(value)

    def clone(self, *children: codecs.CodecT) -> codecs.CodecT:
        return type(self)(self.codec, children=(*self.children, *children))


def register_codec(codec: Codec) -> None:
    """Make `lrx-avro` available to every faust topic of this process."""
    codecs.register(CODEC_NAME, AvroFaustCodec(codec))
