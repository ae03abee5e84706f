"""The masking of customers' addresses and phone numbers (SEC-6) lives in the shared
runtime (`services/runtime/masking.py`): the gateway masks every answer with it, and
composition recognises a masked recipient sent back unchanged."""

from services.runtime.masking import (
    mask as mask,
)
from services.runtime.masking import (
    mask_address_text as mask_address_text,
)
from services.runtime.masking import (
    mask_phone as mask_phone,
)
