"""Streams of a job another worker runs share one reader of the database: however many follow it, one read per
poll; each stream gets every event after the one it asked for; the reader stops when the last stream leaves."""

import asyncio
import time

from convscope.server.jobs import FeedEvent, JobFeed, StoredFeeds

POLL_S = 0.02


class StoredJob:
    """What the database holds of one job: its events so far, and whether it has ended."""

    def __init__(self):
        self.events, self.ended, self.reads = [], False, 0

    def read(self, job_id: int, after: int):
        assert job_id == 7
        self.reads += 1
        return [(seq, "progress", {"step": seq}) for seq in range(after + 1, len(self.events) + 1)], self.ended

    def add(self) -> None:
        self.events.append(len(self.events) + 1)


async def followed(feeds: StoredFeeds, after: int) -> list[int]:
    return [event.seq async for event in feeds.follow(7, after)]


def test_followers_share_one_reader_and_each_gets_what_it_asked_for():
    async def scenario():
        job = StoredJob()
        job.add()
        feeds = StoredFeeds(job.read, asyncio.get_running_loop(), poll_s=POLL_S)
        streams = [asyncio.create_task(followed(feeds, after)) for after in (0, 0, 0, 0, 2)]
        started = time.monotonic()
        for _ in range(9):
            await asyncio.sleep(POLL_S * 1.5)
            job.add()
        job.ended = True
        results = await asyncio.gather(*streams)
        polls = (time.monotonic() - started) / POLL_S
        return results, job.reads, polls

    results, reads, polls = asyncio.run(scenario())
    assert results[:4] == [list(range(1, 11))] * 4 and results[4] == list(range(3, 11))
    assert reads <= polls + 3  # one reader: five streams polling on their own would read about 5x as often


def test_the_reader_stops_when_the_last_follower_leaves():
    async def scenario():
        job = StoredJob()
        feeds = StoredFeeds(job.read, asyncio.get_running_loop(), poll_s=POLL_S)
        stream = asyncio.create_task(followed(feeds, 0))
        await asyncio.sleep(POLL_S * 5)
        stream.cancel()  # the client went away
        await asyncio.sleep(POLL_S * 2)
        reads_when_left = job.reads
        await asyncio.sleep(POLL_S * 10)
        return reads_when_left, job.reads

    when_left, later = asyncio.run(scenario())
    assert when_left >= 3 and later == when_left


class FlakyJob(StoredJob):
    """A database that fails ``failures`` reads in a row after the first."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def read(self, job_id: int, after: int):
        if self.reads and self.failures:
            self.failures -= 1
            self.reads += 1
            raise OSError("the database went away")
        return super().read(job_id, after)


def test_a_read_that_fails_now_and_then_does_not_end_the_streams():
    async def scenario():
        job = FlakyJob(failures=2)
        job.add()
        feeds = StoredFeeds(job.read, asyncio.get_running_loop(), poll_s=POLL_S)
        stream = asyncio.create_task(followed(feeds, 0))
        deadline = time.monotonic() + 5
        while job.failures:  # both failed reads happened before the next event comes
            assert time.monotonic() < deadline
            await asyncio.sleep(POLL_S)
        job.add()
        job.ended = True
        return await asyncio.wait_for(stream, 5)

    assert asyncio.run(scenario()) == [1, 2]  # every event, the job's real end: not an end after the failures


def test_a_database_that_stays_away_breaks_the_streams_off_without_an_end():
    async def scenario():
        job = FlakyJob(failures=100)
        job.add()
        feeds = StoredFeeds(job.read, asyncio.get_running_loop(), poll_s=POLL_S)
        return await asyncio.wait_for(followed(feeds, 0), 10)

    try:
        asyncio.run(scenario())
    except ConnectionError as e:
        assert str(e) == "the job's events could not be read from the database"
    else:
        raise AssertionError("the stream ended as if the job had")


def test_a_follower_of_an_ended_job_gets_every_event_and_ends():
    async def scenario():
        job = StoredJob()
        for _ in range(3):
            job.add()
        job.ended = True
        feeds = StoredFeeds(job.read, asyncio.get_running_loop(), poll_s=POLL_S)
        first = await followed(feeds, 0)
        return first, await followed(feeds, 1)

    assert asyncio.run(scenario()) == ([1, 2, 3], [2, 3])


def test_a_feed_keeps_its_newest_events_and_reads_older_ones_back_a_page_at_a_time():
    stored = [FeedEvent(seq, "progress", {"step": seq}) for seq in range(1, 11)]  # all written to the database
    pages = []

    def earlier(after: int, up_to: int) -> list[FeedEvent]:
        page = [e for e in stored if after < e.seq <= up_to][:2]  # two events a read
        pages.append([e.seq for e in page])
        return page

    async def scenario():
        feed = JobFeed(asyncio.get_running_loop(), earlier, keep=4)
        for event in stored[:10]:
            feed.publish(event)
        assert [e.seq for e in feed.events] == [7, 8, 9, 10] and feed.dropped == 6  # memory holds the newest four
        late = asyncio.create_task(collect(feed, 0))
        recent = asyncio.create_task(collect(feed, 8))
        await asyncio.sleep(0.05)
        feed.publish(FeedEvent(11, "finished", {}))
        feed.publish(None)
        return await late, await recent

    late, recent = asyncio.run(scenario())
    assert late == list(range(1, 12)) and recent == [9, 10, 11]
    assert pages == [[1, 2], [3, 4], [5, 6]]  # only the late follower read, and only what memory no longer had


async def collect(feed: JobFeed, after: int) -> list[int]:
    return [event.seq async for event in feed.follow(after)]
