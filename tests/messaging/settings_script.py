"""AppTest harness: the 설정 > 메시지 section alone, as the owner in session state."""

import streamlit as st

import ui
from ui.settings_messaging import render

render(st.session_state["actor"], ui.engine())
