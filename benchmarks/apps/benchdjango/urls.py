import logging

from django.http import JsonResponse
from django.urls import path

log = logging.getLogger("app.items")


def item(request, item_id):  # type: ignore[no-untyped-def]
    log.info("item %d looked up", item_id, extra={"item_id": item_id})
    return JsonResponse({"item_id": item_id})


urlpatterns = [path("items/<int:item_id>", item)]
