"""RunPod, behind one seam. Import each name from the module that defines it:

    client.py    RunPodClient: settings, key hygiene, the transport with bounded retries
    replies.py   what a reply means: the server's words, the RunPodError a failed REST or GraphQL reply is
    errors.py    RunPodError and its kinds; how a server message is classified; the hints
    models.py    pod states, Pod / NetworkVolume / SpotPrice / CatalogPrice / PodSpec, validation, parsing
    rest.py      the REST v2 calls (pods, actions, network volumes, the GPU catalog)
    graphql.py   the GraphQL calls (spot create/resume/price, the status history)

Kept empty of imports: a command that needs only the errors does not pay for http.client and ssl.
"""
