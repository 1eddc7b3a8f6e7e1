from __future__ import annotations

import pytest

from reference_cases import small


@pytest.fixture
def small_params():
    return small
