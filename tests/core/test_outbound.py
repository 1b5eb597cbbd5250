"""OutboundAudio: agent audio leaves in whole 160-byte frames, the last one padded with silence."""

from __future__ import annotations

from callbridge.core.outbound import OutboundAudio

FRAME = 160
PAD = b"\xff"  # μ-law silence


def audio(n: int, start: int = 0) -> bytes:
    """`n` recognisable bytes (a ramp), so chunks can be compared byte for byte."""
    return bytes((start + i) % 251 for i in range(n))


def drain(queue: OutboundAudio, max_bytes: int = 10_000) -> list[tuple[str, int, bytes]]:
    """Every chunk `take()` hands out until it returns None."""
    chunks = []
    while (chunk := queue.take(max_bytes)) is not None:
        chunks.append(chunk)
    return chunks


def test_only_whole_frames_are_handed_out() -> None:
    """400 bytes queued → one chunk of 320 bytes; the last 80 wait."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(400))
    assert drain(queue) == [("item_1", 0, audio(320))]
    assert len(queue) == 80


def test_a_partial_frame_waits_for_more_audio() -> None:
    """Less than one frame gives nothing; the next delta completes the frame."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(100))
    assert queue.take(10_000) is None
    queue.push("item_1", 0, audio(100, start=100))
    assert drain(queue) == [("item_1", 0, audio(160))]
    assert len(queue) == 40


def test_finish_pads_the_last_partial_frame_with_silence() -> None:
    """finish() turns the 100 waiting bytes into one frame: the audio then 60 bytes of 0xFF."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(100))
    queue.finish("item_1")
    assert len(queue) == FRAME
    assert drain(queue) == [("item_1", 0, audio(100) + PAD * 60)]
    assert len(queue) == 0


def test_finish_adds_nothing_to_whole_frames() -> None:
    """An item that ends on a frame boundary is not padded."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(320))
    queue.finish("item_1")
    assert len(queue) == 320
    assert drain(queue) == [("item_1", 0, audio(320))]


def test_max_bytes_is_honoured_and_rounded_down_to_whole_frames() -> None:
    """take(500) hands out 480 bytes (three frames), never a partial frame."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(800))
    queue.finish("item_1")
    assert drain(queue, 500) == [("item_1", 0, audio(480)), ("item_1", 0, audio(320, 480))]


def test_a_budget_below_one_frame_hands_out_nothing() -> None:
    """take(159) returns None and keeps the audio queued."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(320))
    assert queue.take(159) is None
    assert len(queue) == 320


def test_a_new_item_finishes_and_pads_the_previous_one() -> None:
    """Audio for item_2 means item_1 has ended: its partial frame goes out padded, first."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(100))
    queue.push("item_2", 1, audio(200, start=7))
    assert len(queue) == 360
    assert drain(queue) == [
        ("item_1", 0, audio(100) + PAD * 60),
        ("item_2", 1, audio(160, start=7)),
    ]
    assert len(queue) == 40


def test_chunks_never_mix_two_items() -> None:
    """A chunk belongs to one item even when the budget would fit audio of the next."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(160))
    queue.push("item_2", 0, audio(160, start=9))
    queue.finish("item_2")
    assert drain(queue) == [("item_1", 0, audio(160)), ("item_2", 0, audio(160, start=9))]


def test_drop_discards_everything_and_names_the_items_that_lost_audio() -> None:
    """drop() empties the queue and returns the items that still had audio in it."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(100))
    queue.push("item_2", 0, audio(200))
    assert queue.drop() == {"item_1", "item_2"}
    assert (len(queue), queue.take(10_000)) == (0, None)


def test_drop_does_not_name_an_item_already_sent_in_full() -> None:
    """An item whose audio all went out lost nothing, so drop() leaves it out."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(160))
    assert queue.take(10_000) == ("item_1", 0, audio(160))
    queue.push("item_2", 0, audio(100))
    assert queue.drop() == {"item_2"}


def test_drop_of_an_empty_queue_is_an_empty_set() -> None:
    """Nothing queued → nothing lost."""
    assert OutboundAudio().drop() == set()


def test_holds_is_true_only_while_audio_of_that_item_waits() -> None:
    """holds() follows the item's audio: queued, then handed out, then gone."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(100))
    assert (queue.holds("item_1"), queue.holds("item_2")) == (True, False)
    queue.finish("item_1")
    queue.take(10_000)
    assert queue.holds("item_1") is False


def test_len_counts_queued_bytes_including_padding() -> None:
    """len() is the bytes waiting, padding included, and falls as chunks are taken."""
    queue = OutboundAudio()
    assert len(queue) == 0
    queue.push("item_1", 0, audio(250))
    assert len(queue) == 250
    queue.finish("item_1")
    assert len(queue) == 320
    queue.take(FRAME)
    assert len(queue) == FRAME


def test_audio_after_finish_of_the_same_item_starts_a_new_segment() -> None:
    """More audio for an item already finished is queued after its padded tail."""
    queue = OutboundAudio()
    queue.push("item_1", 0, audio(100))
    queue.finish("item_1")
    queue.push("item_1", 0, audio(160, start=50))
    assert drain(queue) == [
        ("item_1", 0, audio(100) + PAD * 60),
        ("item_1", 0, audio(160, start=50)),
    ]
