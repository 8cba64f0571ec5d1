"""The CS desk: inquiries, their SLA and the worker jobs that watch them.

    sla.py       the SLA engine (pure: policies, business calendars, deadlines from a timeline)
    policy.py    where the engine's inputs live (targets per type, business hours, closed days, alerts)
    service.py   what staff and the worker do to an inquiry; saving SLA settings re-times open ones
    queue.py     the open queue, one inquiry's detail, counts (read side of the 문의 page)
    report.py    SLA results over a period and their CSV
    jobs.py      the worker's entry points: the SLA watch and the double-charge sentinel

Callers import the module they need (`from core.inquiries import service`); this file names none,
so importing the pure engine never loads the services.
"""
