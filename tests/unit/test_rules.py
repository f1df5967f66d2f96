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

