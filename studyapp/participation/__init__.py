"""The participant's study: enrolment, the blinded sequence of pairs, answers stored safely, the pages
in the participant's language. Everything a volunteer's browser reaches lives here."""
