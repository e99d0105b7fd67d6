from django.urls import path

from datasets import views

# Mounted under projects/<int:project_id>/datasets/ (studio/urls.py).
app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("versions/<int:version_id>/", views.version_detail, name="version"),
    path("versions/<int:version_id>/profile/", views.version_profile, name="version_profile"),
    path("recipes/", views.recipe_list, name="recipes"),
    path("recipes/builder/", views.recipe_builder, name="recipe_builder"),
]
