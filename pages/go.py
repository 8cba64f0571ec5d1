"""Tracked campaign link (public, no login): record the click, then send the person on.

The target comes from the campaign, never from the URL, so this page is not an open redirect.
"""


import streamlit as st

import ui
from core import campaigns
from core.db import session_scope

params = st.query_params
with session_scope(ui.engine()) as session:
    target = campaigns.record_click(
        session, campaign_id=params.get("c"), public_id=params.get("u"), variant=params.get("v")
    )
if target:
    # One click on to the owner's link (validated as http(s) when saved); no raw HTML on this page.
    st.link_button("바로 가기", target, type="primary")
    st.caption(ui.md_escape(target))
else:
    st.info("이 링크는 더 이상 유효하지 않습니다.")
