"""Choosing lab places by name and tag (no coordinator: a stand-in session holding places)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hkdeploy.errors import UserError
from hkdeploy.lab.coordinator import LabError, Match, Place, Resource, coordinator_address
from hkdeploy.lab.places import parse_tags, select_places


@dataclass
class SessionStandIn:
    """TEST DOUBLE of hkdeploy.lab.coordinator.Session: just the state select_places reads."""

    places: dict[str, Place]
    name: str = "host/me"
    address: str = "127.0.0.1:1"
    resources: dict[tuple[str, str, str], Resource] = field(default_factory=dict)


def _place(name: str, board: str, acquired: str | None = None) -> Place:
    return Place(name, {"board": board}, [Match("rack", name, "*")], acquired)


@pytest.fixture
def session() -> SessionStandIn:
    return SessionStandIn(
        {
            "a": _place("a", "ap4"),
            "b": _place("b", "ap4", acquired="lab/alice"),
            "c": _place("c", "ap4"),
            "d": _place("d", "ap5", acquired="host/me"),
        }
    )


def test_tags_pick_every_free_match_and_skip_held_ones(session: SessionStandIn) -> None:
    chosen = select_places(session, [], {"board": "ap4"})  # type: ignore[arg-type]
    assert [p.name for p in chosen] == ["a", "c"]
    assert [p.name for p in select_places(session, [], {"board": "ap4"}, limit=1)] == ["a"]  # type: ignore[arg-type]


def test_a_named_place_held_by_someone_names_the_holder(session: SessionStandIn) -> None:
    with pytest.raises(LabError) as err:
        select_places(session, ["a", "b"], {})  # type: ignore[arg-type]
    assert "place b is held by lab/alice" in err.value.message and err.value.exit_code == 3


def test_a_place_held_by_me_but_not_this_run_says_how_to_release(session: SessionStandIn) -> None:
    with pytest.raises(LabError) as err:
        select_places(session, ["d"], {})  # type: ignore[arg-type]
    assert "already acquired by you" in err.value.message and "labgrid-client -p d release" in (
        err.value.hint or ""
    )


def test_all_tagged_places_held_is_an_error_naming_them(session: SessionStandIn) -> None:
    session.places["a"].acquired = session.places["c"].acquired = "lab/bob"
    with pytest.raises(LabError) as err:
        select_places(session, [], {"board": "ap4"})  # type: ignore[arg-type]
    assert "a by lab/bob" in err.value.message and "b by lab/alice" in err.value.message


def test_unknown_names_and_tags_are_user_errors(session: SessionStandIn) -> None:
    with pytest.raises(UserError) as err:
        select_places(session, ["zz"], {})  # type: ignore[arg-type]
    assert err.value.exit_code == 2 and "places: a, b, c, d" in err.value.message
    with pytest.raises(UserError):
        select_places(session, [], {"board": "ap9"})  # type: ignore[arg-type]


def test_parse_tags() -> None:
    assert parse_tags(["board=ap4", "rack=1,room=2"]) == {"board": "ap4", "rack": "1", "room": "2"}
    for bad in ("board", "=x", "board="):
        with pytest.raises(UserError):
            parse_tags([bad])


def test_coordinator_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    assert coordinator_address(None) == "127.0.0.1:20408"
    monkeypatch.setenv("LG_COORDINATOR", "lab:20408")
    assert coordinator_address(None) == "lab:20408"
    assert coordinator_address("ws://c:20408/ws") == "c:20408"
