import pytest

from fmstack.errors import InvalidInput
from fmstack.hub.refs import Ref, check_alias, parse_ref, parse_repo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme/intent", Ref("acme", "intent")),
        ("acme/intent:3", Ref("acme", "intent", version=3)),
        ("acme/intent@production", Ref("acme", "intent", alias="production")),
        ("fmstack/minilm-l6", Ref("fmstack", "minilm-l6")),
        ("a.b/c_d-e.f:12", Ref("a.b", "c_d-e.f", version=12)),
    ],
)
def test_parse_ref_accepts_the_three_forms(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected
    assert str(parse_ref(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "acme",
        "acme/",
        "/intent",
        "acme/intent:",
        "acme/intent:0",
        "acme/intent:x",
        "acme/intent@",
        "a/b/c",
        "acme/intent:1@prod",
        "../x",
        "acme/..",
        "acme/in tent",
        "acme/intent@1prod",
    ],
)
def test_parse_ref_rejects_bad_refs_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidInput, match="bad ref"):
        parse_ref(text)


def test_parse_repo_refuses_versions_and_aliases() -> None:
    assert parse_repo("acme/x") == Ref("acme", "x")
    for text in ("acme/x:1", "acme/x@prod"):
        with pytest.raises(InvalidInput, match="without :VERSION or @ALIAS"):
            parse_repo(text)
    with pytest.raises(InvalidInput) as err:  # only the form a repo name may take is offered
        parse_repo("badname")
    assert "expected NAMESPACE/NAME (e.g. acme/intent)" in str(err.value) and ":VERSION" not in str(err.value)


def test_check_alias() -> None:
    assert check_alias("production") == "production"
    for bad in ("1st", "has space", "latest", ""):
        with pytest.raises(InvalidInput):
            check_alias(bad)
