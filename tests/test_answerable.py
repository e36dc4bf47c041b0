"""The pre-generation check that refuses number/date questions the sentences can't answer."""

from rag.reader.answer_type import can_answer, expected_type

VACCINES = "More than 330 million vaccine doses have been delivered to at least 110 countries."
TROOPS = "Tensions mounted on the frontier with Ukraine over the massive troop build up."


def test_question_types() -> None:
    assert expected_type("How many troops has Russia massed?") == "number"
    assert expected_type("When do the Olympics open?") == "date"
    assert expected_type("In which year was it founded?") == "date"
    assert expected_type("Who is the Secretary of State?") is None


def test_number_question_needs_a_new_number() -> None:
    assert can_answer("How many doses were delivered?", [VACCINES])
    assert not can_answer("How many troops has Russia massed?", [TROOPS])
    # a number the question already states is not an answer
    assert not can_answer("Were 110 countries reached, and how many?", ["110 countries got help."])


def test_date_question_needs_a_date() -> None:
    assert can_answer("When did Blinken speak?", ["Blinken spoke on Tuesday."])
    assert not can_answer("When do the Beijing 2022 Olympics open?", ["The Beijing 2022 boycott."])
    assert can_answer("Who is the Secretary of State?", [TROOPS])


def test_day_of_week_question_is_a_date_question() -> None:
    assert expected_type("On which day of the week did Blinken speak?") == "date"


def test_money_question_needs_a_sum_of_money() -> None:
    q = "How much money has the US contributed to COVAX?"
    assert not can_answer(q, [VACCINES])  # a number, but not money
    assert can_answer(q, ["The US gave $4 billion to COVAX."])
    assert can_answer("How much will the plan cost?", ["It will cost 40 billion dollars."])
