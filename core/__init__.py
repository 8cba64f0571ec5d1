"""ChannelDesk domain logic. Never imports streamlit: the worker and the tests use it too."""
