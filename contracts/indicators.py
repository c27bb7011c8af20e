"""The indicator list screeners code their observations against, versioned as data.

Bali Process policy guide on protection (seed 003), "Indicators of trafficking": lists
of indicators are most useful when adapted to the situations authorities meet, and
"States should ideally update indicator lists on a regular basis". So a screening names
the list version its coded indicators come from, and a code is read against that
version for good; a revised list is a new version beside the old one, never an edit.

Each code belongs to the forms of exploitation it indicates, or to every form (the key
common indicators). The strength of an indicator stays the screener's judgement per
case (strong, medium, weak: the ILO/European Commission approach the guide cites), since
one indicator may be strong for a child and medium for an adult.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The forms of exploitation, by their codes in `contracts.events.ExploitationForm`
#: (repeated here as text so the list stays data and imports nothing).
_MARRIAGE = "forced-marriage"
_DOMESTIC = "domestic-servitude"
_SEXUAL = "sexual-exploitation"
_ORGANS = "organ-removal"
_BEGGING = "forced-begging-or-crime"


@dataclass(frozen=True)
class IndicatorList:
    version: str
    source: str
    #: code -> the forms it indicates; empty: a common indicator, valid for every form.
    codes: Mapping[str, frozenset[str]]

    def fits(self, code: str, form: str) -> bool:
        """Whether `code` is on this list and may indicate `form`."""
        forms = self.codes.get(code)
        return forms is not None and (not forms or form in forms)


def _common(*codes: str) -> dict[str, frozenset[str]]:
    return {f"common/{c}": frozenset() for c in codes}


def _of(form: str, *codes: str) -> dict[str, frozenset[str]]:
    return {f"{form}/{c}": frozenset({form}) for c in codes}


BALI_2016_1 = IndicatorList(
    version="bali-2016.1",
    source="Bali Process policy guide on protection, 'Indicators of trafficking' (seed 003)",
    codes={
        **_common(
            "forced-to-enter-or-remain",
            "deceived-about-nature-or-place",
            "excessive-hours",
            "inhumane-or-degrading-conditions",
            "controlled-or-dependent",
            "threats-or-violence",
            "situation-inappropriate-for-age",
        ),
        **_of(
            _MARRIAGE,
            "payment-to-third-party",
            "negotiated-without-the-parties",
            "forced-into-labour-or-sexual-exploitation",
            "virginity-testing",
            "relatives-forced-into-marriage",
            "depression-self-harm-or-isolation",
            "family-discord-or-violence",
            "underage",
        ),
        **_of(
            _DOMESTIC,
            "poor-food-or-malnourished",
            "excessive-hours",
            "no-private-space",
            "confined-or-isolated",
            "insulted-abused-or-threatened",
            "pays-recruitment-fee",
            "underage",
        ),
        **_of(
            _SEXUAL,
            "cannot-refuse-clients-or-acts",
            "little-or-no-money-from-clients",
            "forced-contraception-choices",
            "forced-medical-or-pregnancy-testing",
            "underage",
        ),
        **_of(
            _ORGANS,
            "coerced-into-removal",
            "deceived-about-procedure-or-pay",
            "unaware-where-or-when",
            "does-not-understand-risks",
            "third-party-procurer",
            "recipient-travelling-with-person",
        ),
        **_of(
            _BEGGING,
            "punished-for-low-takings",
            "lives-with-others-doing-the-same",
            "unaware-of-illicit-nature",
            "underage-elderly-or-disabled",
        ),
    },
)

#: version -> list. Versions are added, never edited or removed: old screenings keep
#: their meaning.
INDICATOR_LISTS: Mapping[str, IndicatorList] = {BALI_2016_1.version: BALI_2016_1}
#: What a screening codes against unless it names another version.
CURRENT_INDICATOR_LIST = BALI_2016_1.version
