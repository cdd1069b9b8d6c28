"""A ceiling on what one HTTP response may put in memory, compressed or not.

A 1 MB gzip body can inflate to gigabytes, and the HTTP client inflates whatever the server sends
before anyone sees a byte. So every response is read through CappedTransport, which wraps the
client's own transports (its pool and any proxy's): it asks only for gzip or deflate, inflates the
body itself in bounded pieces and stops at MAX_RESPONSE_BYTES with ResponseTooLarge, which costs
that one request (the question records the error) while memory stays bounded.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

# A chat completion is a few kilobytes; with 20 top log-probabilities per token of a long reply, a
# few megabytes. 32 MiB is far past any real one, and small enough that a bomb costs nothing.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_PIECE = 1 << 20  # inflate at most this much per call: a tiny input cannot make one huge buffer
_DECODABLE = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class UnreadableResponse(Exception):
    """A response iadbench will not read: compressed in a way that was not asked for, or corrupt.
    Not an httpx error, so the SDK neither wraps nor retries it; it costs that one request."""


class ResponseTooLarge(UnreadableResponse):
    """The server's response passed MAX_RESPONSE_BYTES (after decompression)."""


class _Inflater:
    """One content-coding layer, inflated in bounded pieces (deflate: with or without its zlib header)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._object = zlib.decompressobj(_DECODABLE[coding])
        self._started = False

    def inflate(self, data: bytes):
        try:
            piece = self._object.decompress(data, _PIECE)
        except zlib.error:
            if self.coding != "deflate" or self._started:
                raise UnreadableResponse(f"the response's {self.coding} body is corrupt") from None
            self._object = zlib.decompressobj(-zlib.MAX_WBITS)  # servers that send raw deflate
            piece = self._object.decompress(data, _PIECE)
        self._started = True
        while piece:
            yield piece
            piece = self._object.decompress(self._object.unconsumed_tail, _PIECE) if self._object.unconsumed_tail else b""


def _decoded(chunks, inflaters: list[_Inflater]):
    """The raw chunks through every layer, each bounded piece passed on as it comes."""
    if not inflaters:
        yield from chunks
        return
    first, rest = inflaters[0], inflaters[1:]
    for chunk in chunks:
        yield from _decoded(first.inflate(chunk), rest)


@lru_cache(maxsize=2)
def _classes(http):
    """The transport and stream classes for this HTTP library (httpx or httpx2: the same API)."""

    class CappedStream(http.AsyncByteStream):
        def __init__(self, inner, codings: list[str], limit: int) -> None:
            self._inner, self._limit = inner, limit
            self._inflaters = [_Inflater(coding) for coding in reversed(codings)]  # the last applied is undone first

        async def __aiter__(self):
            total = 0
            async for chunk in self._inner:
                for piece in _decoded([chunk], self._inflaters):
                    total += len(piece)
                    if total > self._limit:
                        raise ResponseTooLarge(f"the server's response passed {self._limit // (1024 * 1024)} MiB" + (" once decompressed" if self._inflaters else "") + "; not read further")
                    yield piece

        async def aclose(self) -> None:
            await self._inner.aclose()

    class CappedTransport(http.AsyncBaseTransport):
        def __init__(self, inner, limit: int) -> None:
            self._inner, self._limit = inner, limit

        async def handle_async_request(self, request):
            request.headers["Accept-Encoding"] = "gzip, deflate"
            response = await self._inner.handle_async_request(request)
            codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",") if c.strip() and c.strip().lower() != "identity"]
            unknown = [c for c in codings if c not in _DECODABLE]
            if unknown:
                await response.aclose()
                raise UnreadableResponse(f"the server compressed its response as {', '.join(unknown)}, which iadbench did not ask for and does not read")
            # The body is handed on inflated, so the client must not inflate it again.
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")] if codings else response.headers
            return http.Response(response.status_code, headers=headers, stream=CappedStream(response.stream, codings, self._limit), extensions=response.extensions)

        async def aclose(self) -> None:
            await self._inner.aclose()

    return CappedTransport


def cap_responses(client, http, limit: int = MAX_RESPONSE_BYTES):
    """`client` (an httpx AsyncClient) with every transport it may use wrapped in CappedTransport.
    The client's own transports are wrapped, rather than one passed in, so its pool settings and
    the environment's proxies stay exactly as the SDK made them."""
    capped = _classes(http)
    client._transport = capped(client._transport, limit)
    client._mounts = {pattern: (capped(transport, limit) if transport is not None else None) for pattern, transport in client._mounts.items()}
    return client
