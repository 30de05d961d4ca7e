"""What the tests and the benchmarks share: a real `convscope serve` on a free loopback port (``server``), a
private PostgreSQL server from Debian's binaries (``postgres``), and Debian's chromium driven by Playwright
(``browser``, which needs the test extra: pytest and playwright). Nothing here runs in the product itself."""
