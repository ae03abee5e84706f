from services.runtime.hosts import valid_host


def test_names_and_address_literals_are_accepted() -> None:
    for host in (
        "smtp.example.com",
        "mail-1.example.jp.",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "[2001:db8::25]",
        "[192.0.2.1]",
        "a" * 63 + ".example",
    ):
        assert valid_host(host), host


def test_what_a_resolver_would_refuse_is_refused() -> None:
    for host in (
        "",
        "0" * 254,
        "a" * 64 + ".example",
        "a..example",
        ".example",
        "-a.example",
        "a-.example",
        "a b.example",
        "a/b",
        "[not-an-address]",
        "ex\x00ample",
        "例え.jp",
    ):
        assert not valid_host(host), host
