"""The referral router: one agency's node on the bus (installed as `referral_router`).

Sub-packages by job, in layers. A module imports only from its own sub-package and from
lower layers, never upwards or sideways (`tests/architecture` enforces it):

====  ==========================================  ============================================
layer sub-packages                                job
====  ==========================================  ============================================
0     ``rules``, ``transport``, ``telemetry``     pure lifecycle rules and the roster; the
                                                  transports; spans and metrics
1     ``store``, ``sealing``                      the node's event store; its keys, sealing
                                                  and opening
2     ``sending``, ``receiving``, ``audit``       submit and the outbox relay; reception and
                                                  the inbox loop; the verifiable log
3     ``federation``, ``api``, ``console``        the cross-border gateway; the HTTP routes;
                                                  the officers' web console
4     ``runtime``                                 wires one node (or one gateway) together
====  ==========================================  ============================================

`contracts` (the wire and log formats, free of I/O) is below all of them; no other
service is imported. The composition root that starts whole buses is `nrm`.
"""
