"""Deploy: an image on a cloud machine of its own, as an appliance (umiak.appliance).

    umiak deploy aws IMAGE --region R --instance-type T -p PORT     (umiak.deploy.aws)
    umiak deploy ls | logs ID | rm ID

Everything made is tagged (umiak:deployment), so that ls finds it and rm removes all of it.
"""
