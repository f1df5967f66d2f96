"""Property tests of the pure rules: fare, points and miles arithmetic; seat parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import models

fares = st.integers(min_value=0, max_value=10_000_000)
points = st.integers(min_value=0, max_value=10_000_000)


@given(fares, points)
def test_amount_due_is_never_negative_and_never_above_the_fare(fare: int, requested: int) -> None:
    redeemed = models.points_to_debit(requested, fare)
    due = models.amount_due(fare, redeemed)
    assert 0 <= due <= fare
    assert redeemed <= requested


@given(fares, points)
def test_no_point_is_debited_beyond_what_the_fare_needs(fare: int, requested: int) -> None:
    redeemed = models.points_to_debit(requested, fare)
    if redeemed > 0:
        # One point fewer would not have covered as much of the fare.
        assert models.discount_for_points(redeemed - 1) < min(fare, models.discount_for_points(requested))


def test_one_hundred_points_are_one_unit_of_currency() -> None:
    assert models.discount_for_points(100) == 100  # 100 cents
    assert models.amount_due(12_900, 2_500) == 10_400


@given(st.integers(min_value=0, max_value=10**9))
def test_miles_are_one_per_whole_unit_paid(amount: int) -> None:
    assert models.miles_for(amount) == amount // 100
    assert isinstance(models.miles_for(amount), int)


def test_cabins_cover_162_seats_in_the_documented_rows() -> None:
    seats = models.all_seats()
    assert len(seats) == 162
    counts = {cabin: sum(1 for _, seat_cabin in seats if seat_cabin == cabin) for cabin in models.CABINS}
    assert counts == {"FIRST": 12, "BUSINESS": 18, "ECONOMY": 132}
    assert models.cabin_of_seat("2F") == "FIRST" and models.cabin_of_seat("3A") == "BUSINESS"
    assert models.cabin_of_seat("6A") == "ECONOMY" and models.cabin_of_seat("27F") == "ECONOMY"


@given(st.integers(min_value=1, max_value=27), st.sampled_from("ABCDEF"))
def test_every_seat_parses_back(row: int, letter: str) -> None:
    assert models.parse_seat(f"{row}{letter}") == (row, letter)


@given(st.text(max_size=5))
def test_parse_seat_accepts_exactly_the_aircraft_seats(text: str) -> None:
    valid = {seat for seat, _ in models.all_seats()}
    try:
        row, letter = models.parse_seat(text)
    except ValueError:
        assert text not in valid
    else:
        assert f"{row}{letter}" == text and text in valid


@pytest.mark.parametrize("seat", ["99Z", "0A", "28A", "12G", "A12", "12a", "", "1AA"])
def test_seats_not_on_the_aircraft_are_refused(seat: str) -> None:
    with pytest.raises(ValueError):
        models.parse_seat(seat)



# --- A party's auto-assigned seats sit together ------------------------------------------------
ECONOMY = [seat for seat, cabin in models.all_seats() if cabin == "ECONOMY"]


def test_a_party_in_an_empty_cabin_sits_side_by_side_in_the_front_row() -> None:
    """GIVEN a free cabin THEN a party of 4 gets four neighbouring seats of its first row."""
    assert models.seats_together(ECONOMY, 4) == ["6A", "6B", "6C", "6D"]


def test_neighbours_in_one_row_beat_a_split_row() -> None:
    """GIVEN row 6 with A, B, D free and row 7 with D, E, F free
    THEN a party of 3 gets 7D-7F (side by side), not row 6 (same row, split)."""
    assert models.seats_together(["6A", "6B", "6D", "7D", "7E", "7F"], 3) == ["7D", "7E", "7F"]


def test_one_row_beats_two_rows_even_when_not_side_by_side() -> None:
    assert models.seats_together(["6A", "6C", "6E", "7A", "7B"], 3) == ["6A", "6C", "6E"]


def test_no_row_big_enough_takes_the_fewest_adjacent_rows() -> None:
    """GIVEN two free seats in each of rows 10, 11, 12 and one in row 20
    THEN a party of 5 sits in rows 10-12 (three adjacent rows), never jumping to row 20."""
    free = ["10A", "10B", "11C", "11D", "12E", "12F", "20A"]
    assert models.seats_together(free, 5) == ["10A", "10B", "11C", "11D", "12E"]
    assert models.seats_together(free, 4) == ["10A", "10B", "11C", "11D"]


def test_rows_that_are_not_neighbours_are_not_together() -> None:
    """GIVEN rows 10 and 12 (not 11) THEN a party of 4 spans the rows it must: anywhere, front to back."""
    assert models.seats_together(["10A", "10B", "12A", "12B"], 4) == ["10A", "10B", "12A", "12B"]


def test_too_few_free_seats_is_none_and_no_party_is_nothing() -> None:
    assert models.seats_together(["6A", "6B"], 3) is None
    assert models.seats_together(["6A"], 0) == []


@given(st.lists(st.sampled_from(ECONOMY), unique=True, max_size=40), st.integers(min_value=1, max_value=9),
       st.integers(min_value=0, max_value=1000))
def test_seats_together_picks_distinct_free_seats_or_none(free: list[str], count: int, seed: int) -> None:
    """Whatever is free and however many travel: distinct free seats, as many as asked, or
    None exactly when too few are free; a random pick among the best obeys the same."""
    import random

    for rng in (None, random.Random(seed)):
        picked = models.seats_together(free, count, rng)
        if len(free) < count:
            assert picked is None
        else:
            assert picked is not None and len(picked) == count == len(set(picked)) and set(picked) <= set(free)


def test_the_fare_is_every_leg_for_every_passenger() -> None:
    assert models.party_fare("ECONOMY", 4, 2) == 8 * models.BASE_FARES["ECONOMY"]
    assert models.party_fare("FIRST", 1, 1) == models.BASE_FARES["FIRST"]
